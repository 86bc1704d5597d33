// ---------------------------------------------------------------------------------------------
// DEVELOPMENT ONLY: servers from before the identity issue have no /api/v1/me (404). So that the
// record pages can be developed against them, a dev build (`npm run dev`, or a build made with
// VITE_ALLOW_NO_AUTH=1 as the e2e runner does for such a server) treats that 404 as "no
// authentication on this server" and runs with every permission, showing a banner.
// A normal production build never does: there a 404 on /me is an error.
// ---------------------------------------------------------------------------------------------
import type { Me } from '@/api/types'

export function noAuthAllowed(): boolean {
  return import.meta.env.DEV || import.meta.env.VITE_ALLOW_NO_AUTH === '1'
}

export const NO_AUTH_ME: Me = {
  user: {
    id: 'system',
    username: 'system',
    display_name: 'system',
    email: null,
    mobile: null,
    department_id: null,
    totp_enabled: false,
  },
  roles: [],
  permissions: {},
  field_rules: {},
  is_admin: true,
}
