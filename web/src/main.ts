import { createApp } from 'vue'
import { createPinia } from 'pinia'
import ElementPlus, { ElMessage } from 'element-plus'
import 'element-plus/dist/index.css'
import 'element-plus/theme-chalk/dark/css-vars.css'
import './styles.css'
import App from './App.vue'
import { i18n } from './locales'
import { router } from './router'
import { onUnauthenticated } from './api/http'
import { useAuthStore } from './stores/auth'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
app.use(ElementPlus)
app.use(router)

// A session that expires mid-work: forget the user, keep the page they were on, go to login.
let redirecting = false
onUnauthenticated(() => {
  const auth = useAuthStore(pinia)
  auth.clear()
  const current = router.currentRoute.value
  if (current.meta.public || redirecting) return
  redirecting = true
  ElMessage({ type: 'warning', message: i18n.global.t('errors.sessionExpired') })
  void router.push({ path: '/login', query: { redirect: current.fullPath } }).finally(() => {
    redirecting = false
  })
})

app.mount('#app')
